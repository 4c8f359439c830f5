"""Observed behaviour: what a traced run of a program really did (strace output), for comparison with the
static answer.  Nothing here runs the traced program."""
