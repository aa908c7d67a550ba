"""`cpms simulate`: OCPP 1.6J chargers for demos and load, written with the `ocpp` library's
ChargePoint over `websockets`. `meter` is the energy arithmetic, `charger` one charge point's
behaviour, `fleet` runs many of them against a gateway, `registration` registers them through the
operator API, and `command_line` is its command line (`cpms simulate`)."""
