"""Monitoring: drift reports, performance tracking, the validation gate, the retraining policy,
alerts and the status board. It may import `warehouse` and `models`, never `orchestration`."""
