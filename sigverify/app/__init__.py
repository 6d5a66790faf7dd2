"""The Qt-free application layer between the core and its two front ends (GUI and CLI).

- ``session``         open a model session: model + device + metric, with typed fallbacks (notices)
- ``case``            one case: questioned signature + references -> decision -> one audit record
- ``library_service`` enrol / refresh / verify against the customer library

Front ends call these; they never build a decision or an audit record themselves.
"""
