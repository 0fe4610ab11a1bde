"""The text of each email Tessera sends. Plain text: every client shows it, no tracking."""

from __future__ import annotations

from tessera.mail import Mail


def invitation(to: str, organization: str, inviter: str, url: str, days: int) -> Mail:
    return Mail(
        to=to,
        subject=f"You are invited to join {organization}",
        text=(
            f"{inviter} invited you to join {organization}.\n\n"
            f"Accept the invitation here (the link works once, for {days} days):\n\n"
            f"{url}\n\n"
            "If you did not expect this invitation, you can ignore this email.\n"
        ),
    )


def password_reset(to: str, url: str) -> Mail:
    return Mail(
        to=to,
        subject="Reset your password",
        text=(
            "Someone asked to reset the password of the account with this email.\n\n"
            "Choose a new password here (the link works once, for one hour):\n\n"
            f"{url}\n\n"
            "Resetting signs you out everywhere. If you did not ask for this, ignore this "
            "email: your password stays as it is.\n"
        ),
    )


def email_verification(to: str, url: str) -> Mail:
    return Mail(
        to=to,
        subject="Verify your email address",
        text=(
            "Confirm that this address is yours by following this link "
            "(it works once, for 24 hours):\n\n"
            f"{url}\n\n"
            "If you did not create an account, you can ignore this email.\n"
        ),
    )
