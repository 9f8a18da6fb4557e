"""`make faults`: every AWS call and Slack post of every function, failed once, then redelivered.

For each scenario (one realistic event per function and trigger, ``scenarios``) the matrix

1. runs the scenario clean against a deployed local stack (moto in server mode over real
   HTTP, the Slack stand-in), recording every AWS call the function makes (service,
   operation, its occurrence in the run, and the function's code that made it) and every
   Slack post: these are the call sites, discovered, never listed by hand;
2. for each call site and each fault (``injection.FAULTS``), resets the local AWS, runs the
   scenario with that one call failing once (botocore event hooks on the function's own
   boto3 session; the Slack stand-in for the post), then, when the trigger would, delivers
   the event again with the fault cleared: Lambda's asynchronous retry (same event, same
   request id), SQS after the visibility timeout (the same message, received once more), or
   the scaler's next tick;
3. reads the side effects back from the local AWS and the Slack stand-in (Batch jobs, ECS
   tasks, SQS messages, SNS notifications, S3 objects, service sizes, Slack posts, and the
   messages a function puts back in its own queue, such as the dispatcher with no room)
   and checks them against the clean run's: exactly one of each, nothing left in progress
   (``matrix``);
4. finds the second-order call sites, the calls the faulted cells' deliveries made and
   the clean run's never did (a failed attempt's record deleted, a lookup after a lost
   answer), and fails each once with each fault after the first-order fault that reaches
   it, then redelivers and checks as above.

``python -m devtools.faults`` writes docs/faults.md from a run (``page``); ``--check``
compares instead. tests/integration/test_faults.py runs every cell in ``make test`` and
fails when a cell is not exactly-once (unless it is one of ``matrix.KNOWN_LIMITS``) or when
docs/faults.md does not say what the run found.
"""
