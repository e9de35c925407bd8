"""Smart dispatch (智能派单): who should do a work order, and why."""
