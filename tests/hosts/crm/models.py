"""The second host's models: the same ideas as the demo's, under other names."""

from django.db import models


class Club(models.Model):
    title = models.CharField(max_length=200)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class Member(models.Model):
    class Kind(models.TextChoices):
        MEMBER = "member", "Member"
        SUPPORTER = "supporter", "Supporter"
        VOLUNTEER = "volunteer", "Volunteer"

    club = models.ForeignKey(Club, on_delete=models.CASCADE, related_name="people")
    display_name = models.CharField(max_length=300, blank=True)
    kind = models.CharField(max_length=20, choices=Kind, default=Kind.MEMBER)
    is_archived = models.BooleanField(default=False)
    email_address = models.CharField(max_length=300, blank=True)
    phone_number = models.CharField(max_length=100, blank=True)
    town = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["display_name"]

    def __str__(self) -> str:
        # Deliberately not the display name: the sync log must take names from the mapping.
        return f"Member #{self.pk}"
