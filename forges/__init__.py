"""Forges (GitHub, GitLab, Gitea/Forgejo) starting builds: configured forges
(``HARBOR_FORGES``), their webhooks verified and recorded, and plan triggers matched."""
