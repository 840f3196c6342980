"""Report: the notebooks' library and the runs that execute them.

    session      what every notebook opens first: env, window, functions, where AWS is
    record       record a notebook's key results (scrapbook's format)
    charts       the figures of the notebooks and runbooks
    summary      the one-page view, from what the other notebooks recorded
    interactive  tuning controls in JupyterLab, a static view in reports
    notebooks    the run's notebooks, their parameters, executing one with Papermill
    folders      run folders and the ``latest`` link
    run          ``workbook run``: every notebook, one run folder
    runbook      the HTML runbook
    redact       secrets never reach the outputs
    schedule     crontab and systemd lines for scheduled reports
"""
