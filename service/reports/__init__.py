"""The run report: yield, diversity, the collapse radar, the judge audit and both refusal rates,
computed from stored rows (:func:`service.reports.compute.build_run_report`)."""
