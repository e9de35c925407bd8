"""form-js schemas: reading them and validating submitted data on the server."""
