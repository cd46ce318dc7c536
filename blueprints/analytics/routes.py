"""Analytics routes (issue: quality and analytics)."""
from flask_smorest import Blueprint

blp = Blueprint("analytics", __name__, url_prefix="/api/calls",
                description="Call statistics and quality trends.")
