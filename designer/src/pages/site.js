// At the site: position, camera and voice notes on the phone.
