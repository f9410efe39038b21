"""`python -m ml.synthetic`: see ml.synthetic.generate."""

from ml.synthetic.generate import main

main()
