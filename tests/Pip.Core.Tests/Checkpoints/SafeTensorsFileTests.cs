using System.Text;
using Pip.Checkpoints;
using static Pip.Core.Tests.Checkpoints.SafeTensorsFixtures;

namespace Pip.Core.Tests.Checkpoints;

public sealed class SafeTensorsFileTests : IDisposable
{
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    private CheckpointFormatException OpenFails(string headerJson, byte[] data, ulong? lengthOverride = null)
    {
        var path = Write(_dir, "bad.safetensors", headerJson, data, lengthOverride);
        var act = () => SafeTensorsFile.Open(path).Dispose();
        var ex = act.Should().Throw<CheckpointFormatException>().Which;
        ex.FilePath.Should().Be(path);
        ex.Message.Should().Contain(path);
        return ex;
    }

    [Fact]
    public void Open_ValidHandWrittenFile_ExposesTensorsMetadataAndBytes()
    {
        var data = RandomBytes(12, 1);
        var path = Write(_dir, "ok.safetensors",
            """{"__metadata__":{"format":"pt"},"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},"a":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}""",
            data);

        using var file = SafeTensorsFile.Open(path);

        file.Metadata.Should().Equal(new Dictionary<string, string> { ["format"] = "pt" });
        file.Tensors.Select(t => t.Name).Should().Equal("a", "b");
        var a = file.GetInfo("a");
        a.DType.Should().Be(SafeTensorDType.F32);
        a.Shape.Should().Equal(1, 2);
        a.ElementCount.Should().Be(2);
        file.GetInfo("b").DType.Should().Be(SafeTensorDType.F16);
        file.GetBytes("a").ToArray().Should().Equal(data[..8]);
        file.GetBytes("b").ToArray().Should().Equal(data[8..]);
        unsafe
        {
            var p = file.GetPointer("b", out var length);
            length.Should().Be(4);
            new ReadOnlySpan<byte>(p, 4).ToArray().Should().Equal(data[8..]);
        }
    }

    [Fact]
    public void Open_ScalarAndEmptyTensors_AreAccepted()
    {
        var path = Write(_dir, "s.safetensors",
            """{"s":{"dtype":"I64","shape":[],"data_offsets":[0,8]},"e":{"dtype":"BF16","shape":[0,3],"data_offsets":[8,8]}}""",
            RandomBytes(8, 2));

        using var file = SafeTensorsFile.Open(path);

        file.GetInfo("s").ElementCount.Should().Be(1);
        file.GetInfo("e").ByteLength.Should().Be(0);
        file.Metadata.Should().BeEmpty();
    }

    [Fact]
    public void Open_FileShorterThanLengthField_Throws()
    {
        var path = _dir.File("short.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        var act = () => SafeTensorsFile.Open(path);
        act.Should().Throw<CheckpointFormatException>().Which.Message.Should().Contain("too short").And.Contain(path);
    }

    [Fact]
    public void Open_HeaderLengthOverLimit_Throws()
    {
        OpenFails("{}", [], lengthOverride: 100_000_001).Message.Should().Contain("exceeds the limit");
    }

    [Fact]
    public void Open_HeaderLengthPastEndOfFile_Throws()
    {
        OpenFails("{}", new byte[16], lengthOverride: 1000).Message.Should().Contain("exceeds the 18 bytes");
    }

    [Fact]
    public void Open_HeaderNotUtf8_Throws()
    {
        var path = _dir.File("utf.safetensors");
        File.WriteAllBytes(path, BuildRaw([(byte)'{', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)':', (byte)'1', (byte)'}'], []));
        var act = () => SafeTensorsFile.Open(path);
        act.Should().Throw<CheckpointFormatException>().Which.Message.Should().Contain("UTF-8");
    }

    [Fact]
    public void Open_HeaderNotJson_Throws()
    {
        OpenFails("""{"a":{"dtype":"F32",""", []).Message.Should().Contain("not valid JSON");
    }

    [Fact]
    public void Open_HeaderNotObject_Throws()
    {
        OpenFails("[1, 2, 3]", []).Message.Should().Contain("does not start with '{'");
    }

    [Fact]
    public void Open_UnknownDtype_ThrowsNamingTensor()
    {
        var ex = OpenFails("""{"w":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}}""", new byte[4]);
        ex.Field.Should().Be("w");
        ex.Message.Should().Contain("F8_E4M3").And.Contain("'w'");
    }

    [Theory]
    [InlineData("""{"w":{"dtype":3,"shape":[1],"data_offsets":[0,4]}}""", "'dtype' must be a string")]
    [InlineData("""{"w":{"shape":[1],"data_offsets":[0,4]}}""", "no 'dtype'")]
    [InlineData("""{"w":{"dtype":"F32","data_offsets":[0,4]}}""", "no 'shape'")]
    [InlineData("""{"w":{"dtype":"F32","shape":"1","data_offsets":[0,4]}}""", "'shape' must be an array")]
    [InlineData("""{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}""", "non-negative integers")]
    [InlineData("""{"w":{"dtype":"F32","shape":[1]}}""", "no 'data_offsets'")]
    [InlineData("""{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}""", "two integers")]
    [InlineData("""{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,"4"]}}""", "non-negative integers")]
    [InlineData("""{"w":[1,2]}""", "must be an object")]
    public void Open_EntryWithWrongFieldTypes_ThrowsNamingTensor(string header, string fragment)
    {
        var ex = OpenFails(header, new byte[4]);
        ex.Field.Should().Be("w");
        ex.Message.Should().Contain(fragment);
    }

    [Fact]
    public void Open_NegativeDimension_Throws()
    {
        OpenFails("""{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", new byte[4])
            .Message.Should().Contain("non-negative integers");
    }

    [Fact]
    public void Open_ShapeSpanMismatch_Throws()
    {
        var ex = OpenFails("""{"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,8]}}""", new byte[8]);
        ex.Field.Should().Be("w");
        ex.Message.Should().Contain("needs 12 bytes").And.Contain("span 8");
    }

    [Fact]
    public void Open_OffsetsPastDataSection_Throws()
    {
        OpenFails("""{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", new byte[8])
            .Message.Should().Contain("past the end of the data section (8 bytes)");
    }

    [Fact]
    public void Open_OffsetsEndBeforeBegin_Throws()
    {
        OpenFails("""{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}""", new byte[8])
            .Message.Should().Contain("end before they begin");
    }

    [Fact]
    public void Open_OverlappingTensors_Throws()
    {
        var ex = OpenFails(
            """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""",
            new byte[12]);
        ex.Field.Should().Be("b");
        ex.Message.Should().Contain("overlap").And.Contain("'a'");
    }

    [Fact]
    public void Open_DuplicateTensorName_Throws()
    {
        var ex = OpenFails(
            """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""",
            new byte[8]);
        ex.Field.Should().Be("a");
        ex.Message.Should().Contain("twice");
    }

    [Fact]
    public void Open_MetadataWithNonStringValue_Throws()
    {
        OpenFails("""{"__metadata__":{"format":1}}""", []).Message.Should().Contain("must be a string");
    }

    [Fact]
    public void GetBytes_UnknownName_ThrowsKeyNotFoundNamingFile()
    {
        var path = Write(_dir, "k.safetensors", """{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}""", [7]);
        using var file = SafeTensorsFile.Open(path);
        var act = () => file.GetBytes("b").ToArray();
        act.Should().Throw<KeyNotFoundException>().Which.Message.Should().Contain(path).And.Contain("'b'");
    }

    [Fact]
    public void GetBytes_AfterDispose_ThrowsObjectDisposed()
    {
        var path = Write(_dir, "d.safetensors", """{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}""", [7]);
        var file = SafeTensorsFile.Open(path);
        file.Dispose();
        var act = () => file.GetBytes("a").ToArray();
        act.Should().Throw<ObjectDisposedException>();
    }

    [Fact]
    public void Open_PaddedHeader_IsAccepted()
    {
        var header = """{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}""";
        header += new string(' ', (8 - Encoding.UTF8.GetByteCount(header) % 8) % 8);
        var path = Write(_dir, "p.safetensors", header, [42]);
        using var file = SafeTensorsFile.Open(path);
        file.DataOffset.Should().Be(8 + Encoding.UTF8.GetByteCount(header));
        file.GetBytes("a").ToArray().Should().Equal(42);
    }
}
