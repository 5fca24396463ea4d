"""Page views, one module per page family. Views stay thin: parse, check, call a service, render."""
