"""Persistent user settings (QSettings): device, metric, threshold policy, model, recent files.

Stored as an INI file in the user's config folder. Tests isolate them with :func:`use_settings_dir`
or the ``SIGVERIFY_SETTINGS_DIR`` environment variable (an INI file in a temporary folder).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from PySide6.QtCore import QSettings

ORGANIZATION = "sigverify"
APPLICATION = "sigverify"
DEVICES = ("auto", "cpu", "cuda")
METRICS = ("euclidean", "cosine")
# Only the mean over the references: the model card's thresholds are calibrated for it. A saved "min"
# (older versions offered it with the mean's thresholds) is read back as "mean".
AGGREGATES = ("mean",)
#: decision policies the Settings menu may offer, each only when the model card has thresholds calibrated
#: for it (``Verifier.policies``); "" = the card's default policy
POLICIES = ("writer", "mean", "min")
MAX_RECENT = 10

_settings_dir: str | None = None


def use_settings_dir(path: str | None) -> None:
    """Keep settings in ``path``/sigverify/sigverify.ini instead of the user's real settings (tests)."""
    global _settings_dir
    _settings_dir = str(path) if path else None
    if path:
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(path))


def qsettings() -> QSettings:
    """The app's settings store; ``SIGVERIFY_SETTINGS_DIR`` (tests, portable installs) relocates it."""
    env = os.environ.get("SIGVERIFY_SETTINGS_DIR")
    if env and env != _settings_dir:
        use_settings_dir(env)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def _bool(v, default: bool) -> bool:
    if v is None:
        return default
    if isinstance(v, bool):
        return v
    return str(v).lower() in ("1", "true", "yes", "on")


@dataclass
class AppSettings:
    device: str = "auto"
    metric: str = ""  # "" = the model card's default metric
    aggregate: str = "mean"  # legacy key (older versions' mean / min choice, read back as "mean")
    policy: str = ""  # the decision policy chosen in Settings > Threshold policy; "" = the model card's default
    adapt_to_person: bool = True
    model_path: str = ""  # "" = shipped default model
    recent: list[str] = field(default_factory=list)
    last_dir: str = ""

    @classmethod
    def load(cls) -> "AppSettings":
        s = qsettings()
        d = cls()
        dev = str(s.value("inference/device", d.device))
        met = str(s.value("inference/metric", d.metric) or "")
        agg = str(s.value("inference/aggregate", d.aggregate))
        pol = str(s.value("inference/policy", d.policy) or "")
        recent = s.value("files/recent", [])
        if isinstance(recent, str):
            recent = [recent]
        return cls(
            device=dev if dev in DEVICES else "auto",
            metric=met if met in METRICS else "",
            aggregate=agg if agg in AGGREGATES else "mean",
            policy=pol if pol in POLICIES else "",
            adapt_to_person=_bool(s.value("inference/adapt_to_person"), True),
            model_path=str(s.value("model/path", "") or ""),
            recent=[str(r) for r in (recent or [])][:MAX_RECENT],
            last_dir=str(s.value("files/last_dir", "") or ""),
        )

    def save(self) -> None:
        s = qsettings()
        s.setValue("inference/device", self.device)
        s.setValue("inference/metric", self.metric)
        s.setValue("inference/aggregate", self.aggregate)
        s.setValue("inference/policy", self.policy)
        s.setValue("inference/adapt_to_person", self.adapt_to_person)
        s.setValue("model/path", self.model_path)
        s.setValue("files/recent", list(self.recent))
        s.setValue("files/last_dir", self.last_dir)
        s.sync()

    def add_recent(self, path: str) -> None:
        self.recent = [path] + [r for r in self.recent if r != path]
        del self.recent[MAX_RECENT:]
