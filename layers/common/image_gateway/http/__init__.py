"""HTTP requests of the client API: the gate every request passes and JSON body decoding."""
