"""RQ job functions (they take ids, never objects) and the queue set-up."""
