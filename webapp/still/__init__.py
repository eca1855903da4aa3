"""Still images over POST /predict, and the page that offers both."""
