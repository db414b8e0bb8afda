#!/usr/bin/env bash
# shellcheck shell=bash disable=SC2154 # sourced by build.sh, which defines $PREFIX and $jobs
# netCDF-C on our HDF5: netCDF-3 and netCDF-4 files. No DAP (OPeNDAP), NCZarr (GDAL has its
# own Zarr driver), byte-range or plugins: fewer libraries, and nothing GDAL's driver needs.
# Both spellings of each option: 4.9.3 renamed ENABLE_* to NETCDF_ENABLE_*.
opts=(DAP DAP2 DAP4 NCZARR BYTERANGE PLUGINS TESTS EXAMPLES FILTER_TESTING DOXYGEN HDF4 LIBXML2 S3 LOGGING)
off=()
for opt in "${opts[@]}"; do off+=("-DENABLE_$opt=OFF" "-DNETCDF_ENABLE_$opt=OFF"); done
cmake_install "${off[@]}" -DBUILD_UTILITIES=OFF -DNETCDF_BUILD_UTILITIES=OFF \
    -DENABLE_NETCDF_4=ON -DNETCDF_ENABLE_NETCDF_4=ON -DENABLE_HDF5=ON -DNETCDF_ENABLE_HDF5=ON \
    -DNETCDF_ENABLE_FILTER_SZIP=OFF -DNETCDF_ENABLE_FILTER_BLOSC=OFF -DNETCDF_ENABLE_FILTER_ZSTD=OFF \
    -DNETCDF_ENABLE_FILTER_BZ2=OFF -DENABLE_FILTER_SZIP=OFF -DENABLE_FILTER_BLOSC=OFF
