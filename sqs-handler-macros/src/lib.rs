//! sqs-handler-macros: under construction (issue 3).
