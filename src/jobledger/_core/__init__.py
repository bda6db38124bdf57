"""The pure core of jobledger: values, rules and decisions, with no I/O."""
