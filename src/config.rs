//! config.yml: the original's keys plus ours.
