"""One router per resource; routes validate, authorise and call a service, nothing more."""
