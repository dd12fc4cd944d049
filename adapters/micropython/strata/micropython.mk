# strata as a MicroPython user C module, for the make-based ports (unix):
#   make -C ports/unix USER_C_MODULES=<strata>/adapters/micropython
# (the folder above this one, as in MicroPython's examples/usercmodule: the
# module is named after its folder, and a folder named "micropython" would
# put its objects where the unix port writes its program)
#
# The module's own file is modstrata.c; strata's sources are compiled into
# the firmware from the tree three levels up. Their headers include each other
# as <strata/x.h>, which an include folder of links made in $(BUILD) gives
# (as the CMake build's generated folder does); nothing is written into the
# source tree.
#
# WebSocket needs wolfSSL's wolfCrypt (SHA-1, base64) and zlib; TLS needs
# wolfSSL. Both are on when pkg-config finds them; STRATA_MP_WS=0 or
# STRATA_MP_TLS=0 turns either off (lines and len are always in).

STRATA_MP_DIR := $(USERMOD_DIR)
# Absolute, so strata's objects land under $(BUILD) and not beside the port.
STRATA_ROOT := $(abspath $(STRATA_MP_DIR)/../../..)
STRATA_MP_INC := $(BUILD)/strata_include

STRATA_MP_HAVE_WOLFSSL := $(shell pkg-config --exists wolfssl zlib 2>/dev/null && echo 1 || echo 0)
STRATA_MP_WS ?= $(STRATA_MP_HAVE_WOLFSSL)
STRATA_MP_TLS ?= $(STRATA_MP_HAVE_WOLFSSL)

SRC_USERMOD_C += $(STRATA_MP_DIR)/modstrata.c

STRATA_MP_SRC := \
	$(STRATA_ROOT)/streams/stream.c \
	$(STRATA_ROOT)/streams/buffered.c \
	$(STRATA_ROOT)/streams/wbuf.c \
	$(STRATA_ROOT)/streams/socket.c \
	$(STRATA_ROOT)/protos/line.c \
	$(STRATA_ROOT)/protos/lenprefix.c

ifeq ($(STRATA_MP_WS),1)
STRATA_MP_SRC += \
	$(STRATA_ROOT)/protos/http1.c \
	$(STRATA_ROOT)/protos/ws.c \
	$(STRATA_ROOT)/protos/ws_handshake.c \
	$(STRATA_ROOT)/protos/ws_deflate.c \
	$(STRATA_ROOT)/protos/utf8.c
CFLAGS_USERMOD += -DSTRATA_WITH_WS=1
endif
ifeq ($(STRATA_MP_TLS),1)
STRATA_MP_SRC += \
	$(STRATA_ROOT)/protos/tls.c \
	$(STRATA_ROOT)/protos/tls_config.c
CFLAGS_USERMOD += -DSTRATA_WITH_TLS=1
endif
ifneq ($(STRATA_MP_WS)$(STRATA_MP_TLS),00)
CFLAGS_USERMOD += $(shell pkg-config --cflags wolfssl zlib)
LIBS_USERMOD += $(shell pkg-config --libs wolfssl zlib)
endif

# Not scanned for qstrs: only modstrata.c names any.
SRC_USERMOD_LIB_C += $(STRATA_MP_SRC)
CFLAGS_USERMOD += -I$(STRATA_MP_INC)

# Made when the makefile is read: the qstr scan of modstrata.c comes first.
$(shell mkdir -p $(STRATA_MP_INC)/strata && \
	ln -sf $(STRATA_ROOT)/streams/*.h $(STRATA_ROOT)/protos/*.h \
	$(STRATA_MP_INC)/strata/)
