"""The `cqrs_*` management commands, thin: parse the options, call the library, print.

Every command derives from `commands._common.CQRSCommand`, which turns a library error
into one line and exit status 1, keeps stdout for what a pipe reads and stderr for what
a person reads, and draws the progress bar. Commands may import anything of the app and
of `relay/`; nothing imports them.
"""
