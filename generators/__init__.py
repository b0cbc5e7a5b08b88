"""Self-Instruct generation as a library: prompts, parsing, inference backends, one iteration.

Nothing here reads the environment, touches a database or serves HTTP; callers pass everything in.
"""
