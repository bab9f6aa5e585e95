"""The one home of proto ⇄ domain: names on the wire, the chat conversions, the relay's sealing.

The service layer, the relay and the daemon all import it; it imports none of them."""
