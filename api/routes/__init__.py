"""HTTP routes, one module per resource, each with one APIRouter."""
