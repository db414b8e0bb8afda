# What Lambda's python runtimes carry in /var/runtime beside the runtime itself: the AWS SDK for
# Python and its dependencies (boto3, botocore, s3transfer, jmespath, python-dateutil, six,
# urllib3), at the versions docker/standin/requirements.txt pins and cites. Built by
# gdal_lambda.standin on top of a stand-in with a Python (STANDIN: the image docker/standin/
# Dockerfile just built), with that Python's lock as runtime.lock. /var/runtime is last on a
# function's sys.path (gdal_lambda.runtime.lambda_env), as on Lambda: a handler importing boto3
# runs here as it would there, and a package that leaves these to the runtime is proven against
# the same copies.
ARG STANDIN
FROM ${STANDIN}
COPY runtime.lock /usr/local/lib/gdal-lambda/runtime.lock
# --require-hashes --no-deps: the lock pins every file by sha256 and lists every dependency. The
# stand-in's own python3 (/var/lang's, or Debian's) installs them and compiles their bytecode.
RUN python3 -m pip install --no-cache-dir --quiet --require-hashes --no-deps --target /var/runtime \
        -r /usr/local/lib/gdal-lambda/runtime.lock
