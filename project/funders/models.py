"""The demo CRM: organisations and their funders (a stand-in for the Lookout platform's models)."""

from django.db import models


class Organisation(models.Model):
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Funder(models.Model):
    class FunderType(models.TextChoices):
        MEMBERSHIP = "membership", "Membership"
        GRANT = "grant", "Grant"
        DONOR = "donor", "Donor"
        SPONSOR = "sponsor", "Sponsor"

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="funders")
    name = models.CharField(max_length=300)
    funder_type = models.CharField(max_length=30, choices=FunderType, default=FunderType.MEMBERSHIP)
    archived = models.BooleanField(default=False)
    first_name = models.CharField(max_length=300, blank=True)
    last_name = models.CharField(max_length=300, blank=True)
    email = models.CharField(max_length=300, blank=True)
    phone = models.CharField(max_length=100, blank=True)
    mobile = models.CharField(max_length=100, blank=True)
    website = models.CharField(max_length=300, blank=True)
    tax_number = models.CharField(max_length=100, blank=True)
    address_line1 = models.CharField(max_length=600, blank=True)
    address_line2 = models.CharField(max_length=600, blank=True)
    city = models.CharField(max_length=300, blank=True)
    region = models.CharField(max_length=300, blank=True)
    postal_code = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
