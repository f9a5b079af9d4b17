"""Helpers for the deep-learning handbook.

Each module is introduced by a notebook, named in its docstring:

* ``profiles``, ``env``, ``paths``, ``hardware``, ``notebook``, ``runner``: ``00_setup``;
* ``data`` (the dataset registry and loaders), ``crawl``: ``01_data_collection``;
* ``clean``: ``02_data_cleaning``;
* ``train`` (the shared training loop), ``models``: ``03_cnn_training``.

Import the modules you need, e.g. ``from helpers import env, profiles``.
"""

__version__ = "0.1.0"
