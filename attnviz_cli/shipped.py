"""The name of the vectors that ship with attnviz: --vectors's default. A module of its own, with no
imports, so that the options that name it cost nothing at start-up."""

DEFAULT_NAME = "glove-6b-50d-50k"
