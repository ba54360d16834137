"""Test doubles shipped with the product: ``triagebot simulate`` runs the bot against them."""
