package wire

import "encoding/binary"

// Notify is the Notify payload (RFC 7296 §3.10). Protocol and SPI are kept
// as received; RFC 7296 says Protocol must be ignored when SPI is empty.
type Notify struct {
	Protocol   uint8 // 0, or ProtoIKE/ProtoAH/ProtoESP when SPI is set
	SPI        []byte
	NotifyType NotifyType
	Data       []byte
}

// Type returns PayloadNotify.
func (*Notify) Type() PayloadType { return PayloadNotify }

func (p *Notify) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return b, encodeErr("Notify payload", "nil payload")
	}
	if len(p.SPI) > 0xff {
		return b, encodeErr("Notify payload", "SPI of %d bytes", len(p.SPI))
	}
	b = append(b, p.Protocol, byte(len(p.SPI)))
	b = binary.BigEndian.AppendUint16(b, uint16(p.NotifyType))
	b = append(b, p.SPI...)
	return append(b, p.Data...), nil
}

func parseNotify(body []byte) (*Notify, error) {
	if len(body) < 4 {
		return nil, malformed("Notify payload", "body is %d bytes, want at least 4", len(body))
	}
	spiSize := int(body[1])
	if 4+spiSize > len(body) {
		return nil, malformed("Notify payload", "SPI size %d exceeds payload length", spiSize)
	}
	return &Notify{
		Protocol:   body[0],
		NotifyType: NotifyType(binary.BigEndian.Uint16(body[2:4])),
		SPI:        orNil(body[4 : 4+spiSize]),
		Data:       orNil(body[4+spiSize:]),
	}, nil
}

// Delete is the Delete payload (RFC 7296 §3.11). For the IKE SA, SPISize is
// 0 and SPIs is empty; for ESP and AH, SPISize is 4.
type Delete struct {
	Protocol uint8
	SPISize  uint8
	SPIs     [][]byte // each exactly SPISize bytes
}

// Type returns PayloadDelete.
func (*Delete) Type() PayloadType { return PayloadDelete }

func (p *Delete) appendBody(b []byte) ([]byte, error) {
	if p == nil {
		return b, encodeErr("Delete payload", "nil payload")
	}
	if len(p.SPIs) > 0xffff {
		return b, encodeErr("Delete payload", "%d SPIs, at most 65535", len(p.SPIs))
	}
	if p.SPISize == 0 && len(p.SPIs) > 0 {
		return b, encodeErr("Delete payload", "%d SPIs of size 0", len(p.SPIs))
	}
	b = append(b, p.Protocol, p.SPISize)
	b = binary.BigEndian.AppendUint16(b, uint16(len(p.SPIs)))
	for i, spi := range p.SPIs {
		if len(spi) != int(p.SPISize) {
			return b, encodeErr("Delete payload", "SPI %d is %d bytes, SPI size is %d", i+1, len(spi), p.SPISize)
		}
		b = append(b, spi...)
	}
	return b, nil
}

func parseDelete(body []byte) (*Delete, error) {
	if len(body) < 4 {
		return nil, malformed("Delete payload", "body is %d bytes, want at least 4", len(body))
	}
	p := &Delete{Protocol: body[0], SPISize: body[1]}
	count := int(binary.BigEndian.Uint16(body[2:4]))
	rest := body[4:]
	size := int(p.SPISize)
	if size == 0 && count > 0 {
		return nil, malformed("Delete payload", "%d SPIs of size 0", count)
	}
	if count*size != len(rest) {
		return nil, malformed("Delete payload", "%d SPIs of size %d need %d bytes, payload has %d", count, size, count*size, len(rest))
	}
	if count > 0 {
		p.SPIs = make([][]byte, count)
		for i := range p.SPIs {
			p.SPIs[i] = rest[i*size : (i+1)*size : (i+1)*size]
		}
	}
	return p, nil
}
