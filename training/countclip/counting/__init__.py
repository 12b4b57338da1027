"""The count language: find, parse and rewrite the number that counts objects in a caption.

    lexicon.py         every vocabulary the rules read (shared word for word with server/counts/lexicon.ts)
    core.py            the rules: find_count, explain, parse_query, replace_count, count_variants, ...
    _native.py         loads core.py's mypyc build while it is current (installed below), else core.py
    fastcount.py       find_count's (value, noun) in C (_fastcount.c), in bulk, for mining
    build.py           builds both (`python -m countclip.counting.build`, run by `make native`)
    cli.py             `countclip counts parse|variants|explain|eval-captions`
    eval_captions.py   `countclip counts eval-captions`: the decision against hand-labelled captions

This package imports nothing else of countclip, and nothing here needs torch.
"""

from countclip.counting import _native

_native.install()  # `import countclip.counting.core` then takes the compiled core while it is current
