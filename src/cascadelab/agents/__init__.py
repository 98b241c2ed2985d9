"""Trading agents: quoting rules for market makers and the simulations that study them."""
