"""WTForms forms (CSRF-protected through Flask-WTF)."""
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, EqualTo, Length, NumberRange, Optional


class RegisterForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    full_name = StringField("Full name", validators=[DataRequired(), Length(min=2, max=120)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])
    confirm = PasswordField("Repeat password", validators=[DataRequired(), EqualTo("password", "Passwords differ.")])


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])


class EmptyForm(FlaskForm):
    """A form with only the CSRF token, for buttons that change state."""


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=[("user", "user"), ("reviewer", "reviewer"), ("admin", "admin")])


class ConsentForm(FlaskForm):
    """Separate choices for face and voice and for each purpose; marketing and political are off
    unless ticked. Expiry in days (default one year)."""

    face = BooleanField("My face (talking-head video)")
    voice = BooleanField("My voice (synthetic speech)")
    personal = BooleanField("Personal videos and messages", default=True)
    marketing = BooleanField("Marketing and advertising")
    political = BooleanField("Political content")
    days = IntegerField("Consent lasts (days)", default=365, validators=[Optional(), NumberRange(1, 3 * 365)])


class DecisionForm(FlaskForm):
    decision = RadioField("Decision", choices=[("approve", "Approve"), ("reject", "Reject")], validators=[DataRequired()])
    reason = TextAreaField("Reason (required)", validators=[DataRequired(), Length(min=10, max=2000)])


class ReasonForm(FlaskForm):
    reason = StringField("Reason", validators=[DataRequired(), Length(min=5, max=500)])


class PasswordConfirmForm(FlaskForm):
    password = PasswordField("Your password", validators=[DataRequired(), Length(max=256)])


class AssistedForm(FlaskForm):
    """In-person enrollment: whom, and the admin's attestation of the ID document check."""

    email = EmailField("The person's account email", validators=[DataRequired(), Length(max=254)])
    document_type = SelectField("ID document checked", choices=[])
    last4 = StringField("Last 4 characters of the document number", validators=[DataRequired(), Length(min=4, max=4)])
    attest = BooleanField("I have checked this document in person, and its photo and name match the person in "
                          "front of me.", validators=[DataRequired("Confirm that you checked the document.")])


class ChangePasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired(), Length(max=256)])
    password = PasswordField("New password", validators=[DataRequired(), Length(max=256)])
    confirm = PasswordField("Repeat the new password", validators=[DataRequired(), EqualTo("password", "Passwords differ.")])
