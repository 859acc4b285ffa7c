from django.apps import AppConfig


class FundersConfig(AppConfig):
    name = "project.funders"
    label = "funders"
    verbose_name = "Lookout CRM (demo)"
