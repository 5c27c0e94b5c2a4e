from otp import services
from pms.celery import app


@app.task(name="otp.deliver_code")
def deliver_code(delivery_id: int) -> str:
    """Issue and email the code of one request (idempotent: see `services.otp_deliver`)."""
    return services.otp_deliver(delivery_id=delivery_id).value


@app.task(name="otp.cleanup")
def cleanup() -> dict[str, int]:
    """Beat's hourly `cleanup_otp`."""
    return services.otp_cleanup()._asdict()
