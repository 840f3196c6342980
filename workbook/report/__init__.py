"""Report: the notebooks' library and the runs that execute them.

    session      what every notebook opens first: env, window, functions, where AWS is
    record       record a notebook's key results (scrapbook's format)
    charts       the figures of the notebooks and runbooks
    summary      the one-page view, from what the other notebooks recorded
    interactive  tuning controls in JupyterLab, a static view in reports
    progress     progress of long cells: a bar in JupyterLab, plain lines in Papermill
    notebooks    the run's notebooks, their parameters, executing one with Papermill
    folders      where outputs go, the checks before a run, partial folders, ``latest``, pruning
    run          ``workbook run``: every notebook, one run folder
    finish       the end of every run, however it ended: runbook, redaction, summary, publishing
    runbook      the HTML runbook
    redact       secrets never reach the outputs
    ownership    one run per local environment, and the check that it is still there
    guard        stop signals, the watchdog of a killed run, reaping the run's processes
    watchdog     the watchdog process itself
    errors       the errors of ``workbook run``
    schedule     crontab and systemd lines for scheduled reports
"""
