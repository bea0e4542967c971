//! sqs-handler: under construction (issue 3).
