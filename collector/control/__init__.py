"""Verified control operations: policy, execution, recording and the manageability probe."""
