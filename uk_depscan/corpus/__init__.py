"""The corpus: many wheels, analysed once each (locally or on Dask), kept in one SQLite database,
and reported as one ecosystem matrix and one plan (``uk-depscan corpus scan|report``)."""
