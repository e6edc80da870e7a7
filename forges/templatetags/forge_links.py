"""Links to a buildable's forge pages (``{{ buildable|forge_links }}``), so the builds
app's templates link commits and refs without builds importing forges."""

from django import template

from forges import links

register = template.Library()


@register.filter
def forge_links(buildable) -> dict[str, str]:
    """``{"commit", "ref", "revision"}`` → URL on the buildable's forge (``forges.links``)."""
    return links.links(buildable)
