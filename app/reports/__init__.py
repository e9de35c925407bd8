"""Documents Paidan makes from work orders: the service report (服务报告)."""
