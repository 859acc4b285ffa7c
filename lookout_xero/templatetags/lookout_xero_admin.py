"""Template tags of lookout_xero's admin pages."""

from django import template

from .. import views

register = template.Library()


@register.simple_tag
def lx_differences(link):
    """The fields of a link changed in Xero, with both values (`views.differences`)."""
    return views.differences(link) if link is not None else []
