"""The image pipeline: recognise images, decode base64 and provider JSON as streams, store to S3.

Images never sit in memory several times over: bytes flow through small spooled temporary files
and 8 MiB multipart parts, so a 4K PNG inside a 25 MB JSON body is finalised in bounded memory.
Import the submodules directly (``image_gateway.images.store``...); this package re-exports
nothing so that importing one piece does not pull in boto3 or httpx.
"""
