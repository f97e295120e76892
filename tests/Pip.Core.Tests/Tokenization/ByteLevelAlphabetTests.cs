using Pip.Tokenization;

namespace Pip.Core.Tests.Tokenization;

public sealed class ByteLevelAlphabetTests
{
    [Theory]
    [InlineData(0x20, 'Ġ')]       // space
    [InlineData(0x0A, 'Ċ')]       // newline
    [InlineData(0x00, '\u0100')]
    [InlineData(0x41, 'A')]       // printable ASCII maps to itself
    [InlineData(0x7F, '\u0121')]  // DEL: first byte after the 33 control bytes
    [InlineData(0xAD, '\u0143')]  // soft hyphen: the last remapped byte
    [InlineData(0xE9, 'é')]       // printable Latin-1 maps to itself
    public void ByteToChar_KnownGpt2Entries_Match(int value, char expected)
    {
        ByteLevelAlphabet.ByteToChar((byte)value).Should().Be(expected);
    }

    [Fact]
    public void Characters_AgreeWithIndependentTable()
    {
        ByteLevelAlphabet.Characters.Should().Equal(TokenizerFixtures.Gpt2ByteChars());
        ByteLevelAlphabet.Characters.Distinct().Should().HaveCount(256);
    }

    [Fact]
    public void EncodeThenTryDecode_ReturnsUtf8Bytes()
    {
        string encoded = ByteLevelAlphabet.Encode("a é😀");
        encoded.Should().Be("aĠÃ©ðŁĺĢ");
        ByteLevelAlphabet.TryDecode(encoded, out byte[] bytes).Should().BeTrue();
        bytes.Should().Equal(System.Text.Encoding.UTF8.GetBytes("a é😀"));
        ByteLevelAlphabet.TryDecode("Ā\u0200", out _).Should().BeFalse();
    }
}
