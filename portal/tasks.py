from celery import shared_task


@shared_task(name="portal.tasks.ping")
def ping() -> str:
    """Answers "pong": proves a worker takes tasks from the broker (tests and health checks)."""
    return "pong"
