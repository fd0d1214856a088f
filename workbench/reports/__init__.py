"""Reports: inventory (GB/T 32150 structure) as HTML, XLSX and Parquet; papermill runners."""
