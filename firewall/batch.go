package firewall

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// nftables v0.3.0 cannot write a table's userdata (NFTA_TABLE_USERDATA),
// and the mark must be in the very transaction that creates the table. So
// a transaction is built with the library on a recording connection that
// talks to no kernel, the table's NEWTABLE message gets the userdata
// attribute, and the whole batch goes to the kernel on the Manager's own
// netlink socket: still one batch, one kernel transaction.

// errRecorded stops the recording connection after it captured the batch.
var errRecorded = errors.New("batch recorded")

// batch is a transaction being built.
type batch struct {
	*nftables.Conn
	msgs []netlink.Message // the captured batch, BATCH_BEGIN … BATCH_END
}

func newBatch() (*batch, error) {
	b := &batch{}
	c, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		if b.msgs == nil {
			b.msgs = slices.Clone(req)
		}
		return nil, errRecorded
	}))
	if err != nil {
		return nil, err
	}
	b.Conn = c
	return b, nil
}

// messages returns the batch the library built: BATCH_BEGIN, the
// messages, BATCH_END. It is empty when nothing was queued.
func (b *batch) messages() ([]netlink.Message, error) {
	b.msgs = nil
	err := b.Flush()
	if b.msgs == nil {
		return nil, err // nothing queued (nil), or a serialization error
	}
	msgs := b.msgs
	for i := range msgs {
		// Sent again on another socket, which numbers them itself.
		msgs[i].Header.Length, msgs[i].Header.Sequence, msgs[i].Header.PID = 0, 0, 0
	}
	return msgs, nil
}

// tableMsg returns the index of the first message of type msg for table.
func tableMsg(msgs []netlink.Message, msg int, table string) (int, error) {
	name := table + "\x00"
	for i, m := range msgs {
		if m.Header.Type != nftMsgType(msg) || len(m.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			return 0, err
		}
		for ad.Next() {
			if ad.Type() == unix.NFTA_TABLE_NAME && string(ad.Bytes()) == name {
				return i, nil
			}
		}
	}
	return 0, fmt.Errorf("no message %d for table %s in the batch", msg, table)
}

// addTableAttr appends an attribute to the first message of type msg for table.
func addTableAttr(msgs []netlink.Message, msg int, table string, a netlink.Attribute) error {
	i, err := tableMsg(msgs, msg, table)
	if err != nil {
		return err
	}
	attr, err := netlink.MarshalAttributes([]netlink.Attribute{a})
	if err != nil {
		return err
	}
	msgs[i].Data = append(slices.Clip(msgs[i].Data), attr...)
	return nil
}

// markNewTable adds cfguard's mark to the NEWTABLE message that creates table.
func markNewTable(msgs []netlink.Message, table string) error {
	return addTableAttr(msgs, unix.NFT_MSG_NEWTABLE, table, netlink.Attribute{Type: nftaTableUserdata, Data: markUserdata()})
}

// delByHandle makes the DELTABLE message of table delete exactly the table
// that was read (by its handle): if another one took its name meanwhile,
// the transaction fails instead of deleting it.
func delByHandle(msgs []netlink.Message, table string, handle uint64) error {
	return addTableAttr(msgs, unix.NFT_MSG_DELTABLE, table, netlink.Attribute{Type: nftaTableHandle, Data: binaryutil.BigEndian.PutUint64(handle)})
}

// sendBatch sends a captured batch on nl and collects the answer to every
// message, as nftables.Conn.Flush does.
//
// Once the batch is sent, a failure to read the kernel's answer (a
// deadline, a closed socket) says nothing about whether the kernel
// committed it: that is an *unconfirmedError, and the caller reads the
// kernel back. A refusal (an errno in the answer) aborts the whole
// transaction and is returned as it is. loseAnswer is a test seam: the
// batch is sent and its answer left unread.
func sendBatch(nl *netlink.Conn, msgs []netlink.Message, loseAnswer bool) error {
	if len(msgs) < 2 {
		return nil
	}
	if _, err := nl.SendMessages(msgs); err != nil {
		return fmt.Errorf("SendMessages: %w", err)
	}
	if loseAnswer {
		return &unconfirmedError{err: os.ErrDeadlineExceeded}
	}
	var errs error
	for _, msg := range msgs[1 : len(msgs)-1] { // BATCH_BEGIN and BATCH_END get no answer
		if _, err := receiveAck(nl, msg.Header.Flags); err != nil {
			if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.ENOBUFS) {
				return err // the kernel sends only one error then
			}
			var errno syscall.Errno
			if !errors.As(err, &errno) {
				return &unconfirmedError{err: err}
			}
			errs = errors.Join(errs, err)
		}
	}
	if errs != nil {
		return fmt.Errorf("conn.Receive: %w", errs)
	}
	return nil
}

// unconfirmedError is a batch that was sent but whose answer was not read:
// the kernel may or may not hold it.
type unconfirmedError struct{ err error }

func (e *unconfirmedError) Error() string {
	return "the kernel's answer to the transaction was not read: " + e.err.Error()
}
func (e *unconfirmedError) Unwrap() error { return e.err }

// receiveAck is nftables v0.3.0's receiveAckAware (Apache-2.0, Google
// LLC): the answer to one message of a batch, an echo and/or an ack.
func receiveAck(nl *netlink.Conn, sent netlink.HeaderFlags) ([]netlink.Message, error) {
	reply, err := nl.Receive()
	if err != nil {
		return nil, err
	}
	if sent&netlink.Acknowledge == 0 || sent&netlink.Dump == netlink.Dump {
		return reply, nil
	}
	if len(reply) != 0 {
		last := reply[len(reply)-1]
		for re := last.Header.Type; re&netlink.Overrun == netlink.Overrun && re&netlink.Done != netlink.Done; re = last.Header.Type {
			r, err := nl.Receive()
			if err != nil {
				return nil, err
			}
			reply = append(reply, r...)
			last = reply[len(reply)-1]
		}
		if last.Header.Type == netlink.Error && len(last.Data) >= 4 && binaryutil.BigEndian.Uint32(last.Data[:4]) == 0 {
			return reply, nil
		}
	}
	ack, err := nl.Receive()
	if err != nil {
		return nil, err
	}
	if len(ack) == 0 {
		return reply, nil
	}
	if ack[0].Header.Type != netlink.Error {
		return nil, fmt.Errorf("expected header %v, but got %v", netlink.Error, ack[0].Header.Type)
	}
	if len(ack[0].Data) < 4 || binaryutil.BigEndian.Uint32(ack[0].Data[:4]) != 0 {
		return nil, fmt.Errorf("error delivered in message: %v", ack[0].Data)
	}
	return reply, nil
}
