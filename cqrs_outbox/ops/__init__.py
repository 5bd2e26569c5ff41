"""The operator tools: sync and repair, diffs, dumps, dead letters, signing keys, progress lines.

They stand on both sides of the app and on the store; neither side imports them.
"""
